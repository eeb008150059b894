"""Workers: the job host and the connections the admin talks to."""
