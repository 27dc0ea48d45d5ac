"""Database: engine and sessions (`engine`), tables (`models`), migrations (`migrate`)."""
