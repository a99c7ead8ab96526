"""placeholder"""
FAMILIES = {}
