"""Coverage-guided fuzz targets (atheris) for every parser of outside input; see fuzz/run.py."""
