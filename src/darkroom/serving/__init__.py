"""Serving deployments: replica processes that load a model version once and answer predict
requests in dynamic batches (`replica`), the server side that starts, watches, restarts and
retires them (`supervisor`), the frames between the two (`protocol`), and the prediction log
written by group commit (`log_writer`). When the executor is Ray, the replicas run as Ray
Serve applications instead (`ray_app` on the nodes, declared by `ray_serving`); `base` is what
both offer the routes. `darkroom.api.routes.deployments` is the HTTP edge."""
