"""Layer 6: model tooling, build time only: building packs from wheels, graph optimisation, int8
quantisation with an accuracy gate, evaluation, publishing to S3."""
