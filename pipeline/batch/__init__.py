"""Many scenes on dask.distributed: the task per scene, the cluster, the resumable manifest."""
