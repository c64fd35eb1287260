"""Reading and writing media. Never imports torch."""
