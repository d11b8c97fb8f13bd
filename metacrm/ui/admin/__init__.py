"""The administration screens under /admin, for super administrators."""
