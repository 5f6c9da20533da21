"""msgspec wire Structs: the small views of request bodies that the hot path decodes."""
