"""Entity resolution: the linkage model, its execution, clustering and golden records."""
