"""What people use: the command line (and, later, the web page). Translates and calls the library."""
