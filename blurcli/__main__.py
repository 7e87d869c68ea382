"""``python -m blurcli``."""
from blurcli._entry import main

main()
