"""The only place SQL lives: pool, embedded server, migrations, one repository module per noun."""
