"""`python -m bench`: the engine's figures against floors measured in the same run (issue 7)."""
