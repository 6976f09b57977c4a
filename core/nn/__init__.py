"""Networks: activations, initializers, layer builders and the network assembled from a spec."""
