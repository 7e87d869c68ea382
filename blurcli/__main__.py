"""``python -m blurcli``."""
from blurcli._cli import main

main()
