"""Component resources. None of them reads stack configuration: everything arrives as args."""
