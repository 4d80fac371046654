"""plexctl (operator CLI, main.py) and the `plexsphere` server command (server_main.py)."""
