"""The GPU worker service (``stembridge worker``): runs the generation stage for bridges elsewhere."""
