"""placeholder"""
TITLE = "common"
CASES: list = []
