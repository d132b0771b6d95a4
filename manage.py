#!/usr/bin/env python3
from rempart.cli import main

if __name__ == "__main__":
    main()
