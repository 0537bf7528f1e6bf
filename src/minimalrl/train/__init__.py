"""The top of the house: running trainings. The loop (`trainer.py`), whether a run resumes
(`resume.py`), and `minimalrl compare`'s grid of runs (`compare.py`)."""
