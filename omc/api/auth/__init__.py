"""Authentication and users: argon2 passwords, signed tokens, the login limiter, the secret
key, the user service (also used by `omc users`), and the FastAPI dependencies."""
