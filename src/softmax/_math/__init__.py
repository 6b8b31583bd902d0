"""The rest of the article's mathematics, on the same front door as softmax.

``activations``  sigmoid (the two-class softmax), log_sigmoid, logit, the base rule
``hardmax``      the temperature -> 0 limit
``derivatives``  the Jacobian diag(p) - p p^T and vector-Jacobian products
``losses``       cross-entropy (and its gradient), entropy
``sampling``     Gumbel-max sampling (temperature 0 = argmax)
"""
