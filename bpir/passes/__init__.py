"""Graph -> Graph passes, one module each, and the pass manager that runs them."""
