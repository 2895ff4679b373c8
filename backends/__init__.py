"""Code generators, one module per backend; each sees only a Graph."""
