"""The record formats of leadflow's topics: the internal events topic and the public
engagement and qualification contracts, with their JSON Schema files."""
