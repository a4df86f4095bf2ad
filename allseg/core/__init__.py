"""What every stage shares: config parsing and checking, errors a user can act on, safe file
writes, the run lock, device settings, and the scripts' command-line frame."""
