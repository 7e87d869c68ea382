"""Reading and writing pictures and videos. Frames are numpy BGR arrays, upright, everywhere else."""
