"""Every GA 36-2018 plate type drawn (plates.py) and warped onto real car scenes (scenes.py): the
evaluation set of benchmarks/plates_types.py and tests/plates/test_plate_types_eval.py (issue 16)."""
