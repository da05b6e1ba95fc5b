"""placeholder"""
TITLE = "structure"
CASES: list = []
