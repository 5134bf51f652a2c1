#!/usr/bin/env python
"""Django's manage.py, for those who expect it; `vigil` does the same."""

from vigil.cli import main

if __name__ == "__main__":
    main()
