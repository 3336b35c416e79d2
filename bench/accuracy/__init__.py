"""The accuracy suite (`make bench-accuracy`): the fusion net with its defaults against
scikit-learn's classifiers with theirs, on real labelled sets, written to docs/accuracy.md."""
