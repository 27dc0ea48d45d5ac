"""Serving deployments: replica processes that load a model version once and answer predict
requests in dynamic batches (`replica`), the server side that starts, watches, restarts and
retires them (`supervisor`), the frames between the two (`protocol`), and the prediction log
written by group commit (`log_writer`). No HTTP here; `darkroom.api.routes.deployments` is
the edge."""
