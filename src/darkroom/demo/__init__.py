"""The offline demo: real document pages, a real DocLayNet model, a real pre-annotation job."""
