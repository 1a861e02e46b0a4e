"""The Customer.io client layer: request types, the async client (auth, region, pacing, retries), error mapping.

Nothing here knows about MCP or the tool table; the tools layer hands the client prepared
``ApiRequest`` objects and gets ``ApiResponse`` objects or ``DeliveryError`` exceptions back.
"""
