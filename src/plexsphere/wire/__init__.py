"""Request/response models shared by server, client, CLI and agent. Field names are the contract's."""
