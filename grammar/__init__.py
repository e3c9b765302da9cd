"""The Lark grammar of gobt scripts, installed as package data (gobt.grammar)."""
