"""ASGI app: thin routes (parse → one service call → serialise), auth, problems, SSE."""
