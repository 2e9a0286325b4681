"""The Docker node executor: each compute node a container on a local engine, with an agent.

`executor.DockerExecutor` implements the core's `NodeExecutor`; `engine` wraps docker-py off the
event loop, `agent` is the node's agent and its link, `keeper` keeps a node's container up,
`launch` writes the script that starts a process, `archive` and `files` move files in and out.
"""
