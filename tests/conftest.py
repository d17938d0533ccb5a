import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

# Puts tests/ on sys.path so that tests can `import reference_crypto`.
sys.path.insert(0, str(HERE))

# `python -m pytest` puts the working directory first on sys.path; from the repository root
# its nymchat/ (Python only, no built _native) would shadow the installed package: drop it.
if not any((HERE.parent / "nymchat").glob("_native*")):
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE.parent]
