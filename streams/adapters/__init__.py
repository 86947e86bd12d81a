"""Platform adapters: native contact-center events in, canonical ``call-events`` out."""
