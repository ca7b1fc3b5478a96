package locale

var spanish = map[string]string{
	"app.name":   "Mensajes seguros",
	"app.skip":   "Ir al contenido",
	"app.footer": "Esta página es privada. Cierre la sesión cuando termine, sobre todo en un teléfono o una computadora compartidos.",

	"home.title": "Mensajes seguros",
	"home.body":  "Para leer los mensajes de su clínica, abra el enlace del mensaje de texto que le enviaron.",

	"link.invalid.title": "Enlace no válido",
	"link.invalid.body":  "Este enlace no es válido o ha vencido. Pida a su clínica que le envíe un mensaje nuevo.",

	"session.ended.title": "Abra su enlace otra vez",
	"session.ended.body":  "Su sesión segura ha terminado. Para proteger sus mensajes, abra el enlace del último mensaje de texto de su clínica para entrar de nuevo.",

	"verify.title":          "Confirme que es usted",
	"verify.intro":          "%s le envió un mensaje seguro. Para verlo, le enviaremos un código por mensaje de texto a su teléfono terminado en %s.",
	"verify.send":           "Envíenme un código",
	"verify.code":           "Código de verificación",
	"verify.code.hint":      "Los 6 dígitos del mensaje de texto que le enviamos.",
	"verify.dob":            "Fecha de nacimiento",
	"verify.dob.hint":       "Por ejemplo 1984-03-27 (año-mes-día).",
	"verify.submit":         "Verificar",
	"verify.sent":           "Enviamos un código a su teléfono terminado en %s. Es válido durante %d minutos.",
	"verify.cooldown":       "Acabamos de enviarle un código. Espere un minuto antes de pedir otro.",
	"verify.locked":         "Por su seguridad, esta página se bloqueó después de demasiados códigos incorrectos. Llame a su clínica: pueden desbloquearla.",
	"verify.wrong":          "Ese código no es correcto o ha vencido. Revise el código de su último mensaje de texto o pida uno nuevo.",
	"verify.wrong_dob":      "El código o la fecha de nacimiento no son correctos. Revíselos e inténtelo de nuevo.",
	"verify.send_failed":    "No pudimos enviar el mensaje de texto en este momento. Inténtelo de nuevo en unos minutos.",
	"verify.too_many_codes": "Ha pedido varios códigos recientemente. Inténtelo de nuevo más tarde o llame a su clínica.",
	"verify.throttled":      "Demasiados códigos incorrectos. Espere unos minutos antes de intentarlo de nuevo.",
	"verify.no_code":        "No hay ningún código pendiente para esta página o ha vencido. Primero pida un código nuevo.",

	"form.code.invalid": "Escriba el código de 6 dígitos de su mensaje de texto.",
	"form.dob.invalid":  "Escriba su fecha de nacimiento, por ejemplo 1984-03-27.",

	"thread.title":         "Sus mensajes",
	"thread.with":          "Mensajes seguros con %s",
	"thread.you":           "Usted",
	"thread.staff":         "Personal de la clínica",
	"thread.withdrawn":     "Este mensaje fue retirado",
	"thread.expired":       "Este mensaje ha vencido y ya no se puede mostrar",
	"thread.state.sending": "Enviando a la clínica…",
	"thread.state.failed":  "No se entregó a la clínica. Llame a la clínica o envíelo de nuevo.",
	"thread.truncated":     "Este mensaje es demasiado largo para mostrarlo completo aquí. Pida el resto a su clínica.",
	"thread.empty":         "Todavía no hay mensajes.",
	"thread.earlier":       "Ver mensajes anteriores",
	"thread.later":         "Ver mensajes más recientes",
	"thread.attachments":   "Archivos adjuntos",
	"thread.write":         "Escriba a su clínica",

	"reply.label":    "Mensaje",
	"reply.hint":     "Hasta 1600 caracteres. En una emergencia, llame al 911.",
	"reply.submit":   "Enviar",
	"reply.sent":     "Su mensaje fue enviado.",
	"reply.empty":    "Escriba un mensaje antes de pulsar Enviar.",
	"reply.too_long": "Su mensaje es demasiado largo. Use menos de 1600 caracteres.",
	"reply.invalid":  "Su mensaje tiene caracteres que no podemos enviar. Escríbalo de nuevo.",
	"reply.failed":   "No se pudo enviar su mensaje en este momento. Inténtelo de nuevo en unos minutos.",

	"upload.title":     "Enviar una foto o un documento",
	"upload.label":     "Foto o PDF",
	"upload.hint":      "JPEG, PNG, HEIC o PDF, hasta %s.",
	"upload.submit":    "Subir",
	"upload.sent":      "Su archivo fue enviado.",
	"upload.missing":   "Primero elija una foto o un PDF.",
	"upload.too_large": "Ese archivo es demasiado grande. El límite es %s.",
	"upload.bad_type":  "Solo podemos aceptar fotos (JPEG, PNG, HEIC) o archivos PDF.",
	"upload.failed":    "No se pudo enviar su archivo en este momento. Inténtelo de nuevo en unos minutos.",

	"signout.submit": "Cerrar sesión",
	"signout.title":  "Ha cerrado la sesión",
	"signout.body":   "Para leer mensajes nuevos, abra el enlace del último mensaje de texto de su clínica.",

	"forbidden.title": "Inténtelo de nuevo",
	"forbidden.body":  "Este formulario ha vencido o no vino de esta página. Vuelva atrás, recargue la página e inténtelo de nuevo.",

	"notfound.title": "Página no encontrada",
	"notfound.body":  "Esta página no existe. Abra el enlace del mensaje de texto de su clínica.",

	"error.title": "Algo salió mal",
	"error.body":  "Algo salió mal de nuestro lado. Inténtelo de nuevo en unos minutos. Si sigue pasando, llame a su clínica.",
}
