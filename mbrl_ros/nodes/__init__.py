"""The ROS 2 nodes: thin shells that translate messages, parameters, timers and services for the library."""
