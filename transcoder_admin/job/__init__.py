"""What a worker runs for one file: analyse, transcode, verify, commit."""
