"""The spectral-fusion network, its checkpoint format and estimators; no file or CLI code."""
