"""Every write to the domain goes through a function here: validate, lock, write, audit."""
