"""surveillance"""
