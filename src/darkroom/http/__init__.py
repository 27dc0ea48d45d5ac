"""What the REST API (`darkroom.api`) and the pages (`darkroom.web`) share over HTTP: request
dependencies (session, principal, store), the wire schemas, blob and archive responses, upload
fields and the run log's event stream. Both build on it; neither imports the other.
"""
