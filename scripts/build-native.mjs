// Placeholder: the native kernel build is added with the tensor backend.
