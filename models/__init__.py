"""The spectral-fusion network, its kernels, checkpoint format and estimators.

It imports nothing of bandfusion but the root modules every layer shares (`errors`, `progress`,
`atomic`, `colours`), so it can be used, and tested, alone.
Its public names load on first use: those built on scikit-learn import it, which prediction
never needs.
"""

import lazy_loader

# The public names and their modules are listed once, in __init__.pyi.
__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
