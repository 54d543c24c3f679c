// Starts Swagger UI on /docs against this server's /openapi.json. A file of
// its own because the Content-Security-Policy allows no inline script.
// validatorUrl: null keeps Swagger UI from sending the document to
// validator.swagger.io: /docs makes no request to any other origin.
"use strict";
window.addEventListener("DOMContentLoaded", function () {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
});
