from django.contrib.auth.hashers import PBKDF2PasswordHasher


class FastPBKDF2PasswordHasher(PBKDF2PasswordHasher):
    """Same algorithm name, one iteration: hashes made in tests verify in the live servers too."""

    iterations = 1
