"""The real-logits table of docs/calibration.md: T fitted on each validation split,
its agreement with two SciPy references, NLL and ECE on the test split before/after.

Usage: python tools/calibration_real_table.py [DATA_DIR]   (default ../shared/data/calibration)
"""
import math, numpy as np
from scipy import optimize, special
from softmax.calibration import fit_temperature, ece, nll
import os, sys
D = (sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "calibration")) + "/"
def snll(z,y,t):
    lp=special.log_softmax(z.astype(np.float64)/t,axis=1); return -lp[np.arange(len(y)),y].mean()
print("| set | T | rel. diff vs minimize_scalar | vs derivative root | NLL before -> after | ECE before -> after | passes |")
print("|---|---|---|---|---|---|---|")
for s in ["resnet110_cifar10","resnet56_cifar100","repvgg_a2_cifar100"]:
    zv,yv,zt,yt=(np.load(D+s+"/"+f) for f in ("logits_val.npy","labels_val.npy","logits_test.npy","labels_test.npy"))
    ts=fit_temperature(zv,yv); T=ts.temperature
    r=optimize.minimize_scalar(lambda u: snll(zv,yv,math.exp(u)), bounds=(math.log(.01),math.log(100)), method="bounded", options={"xatol":1e-12})
    zz=zv.astype(np.float64); rows=np.arange(len(yv))
    def sl(u):
        b=zz/math.exp(u); p=special.softmax(b,axis=1); return np.mean(b[rows,yv]-(p*b).sum(1))
    ub=optimize.brentq(sl,math.log(.01),math.log(100),xtol=1e-15)
    sc=zt.astype(np.float64)/T
    print(f"| {s} | {T:.10f} | {abs(math.exp(r.x)/T-1):.1e} | {abs(math.exp(ub)/T-1):.1e} | {nll(zt,yt):.4f} -> {nll(sc,yt):.4f} | {ece(zt,yt):.4f} -> {ece(sc,yt):.4f} | {ts.iterations} |")
